// A fork-join pool for the CPU backend. Training runs dozens of short parallel ops per step, so
// waking sleeping threads for each (as a dispatch queue does) costs more than some ops take:
// workers here spin for a while after each job and only then sleep on a condition variable.
#define _GNU_SOURCE  // sched_getaffinity
#include "kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { INDEX_BITS = 20, SPINS = 4000 };  // tasks < 2^20 per job
#define EPOCH(state) ((state) >> INDEX_BITS)
#define INDEX(state) ((state) & ((1L << INDEX_BITS) - 1))

static struct {
    pthread_mutex_t job, sleep;
    pthread_cond_t wake;
    pthread_once_t started;
    atomic_long state;  // epoch of the current job << INDEX_BITS | next task to claim
    atomic_long done, tasks;
    atomic_int sleepers;
    _Atomic(kiln_task) body;
    _Atomic(void *) context;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_ONCE_INIT};

static void pause_briefly(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

// Claims and runs tasks of job `epoch` until none is left or a newer job has replaced it.
static void work(long epoch) {
    for (;;) {
        long state = atomic_load(&pool.state);
        const long tasks = atomic_load_explicit(&pool.tasks, memory_order_relaxed);
        kiln_task body = atomic_load_explicit(&pool.body, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool.context, memory_order_relaxed);
        if (EPOCH(state) != epoch || INDEX(state) >= tasks) return;
        if (!atomic_compare_exchange_weak(&pool.state, &state, state + 1)) continue;
        body(context, INDEX(state));
        atomic_fetch_add(&pool.done, 1);
    }
}

static void *worker(void *unused) {
    (void)unused;
    long seen = 0;
    for (;;) {
        long state;
        for (int spin = 0; EPOCH(state = atomic_load(&pool.state)) == seen; ++spin) {
            if (spin < SPINS) { pause_briefly(); continue; }
            pthread_mutex_lock(&pool.sleep);
            atomic_fetch_add(&pool.sleepers, 1);
            while (EPOCH(atomic_load(&pool.state)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep);
            spin = 0;
        }
        seen = EPOCH(state);
        work(seen);
    }
    return 0;
}

static long running = 1;  // the caller plus the workers that started

static long allowed_cpus(void) {
#if defined(__linux__)
    cpu_set_t allowed;  // the CPUs this process may run on (taskset, cgroup cpusets), not all online ones
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 0) return CPU_COUNT(&allowed);
#endif
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? cpus : 1;
}

// Spinning workers beyond a few per CPU only wait for each other, so KILN_NUM_THREADS is capped
// there; a worker that cannot be created (thread or memory limits) leaves the pool smaller.
static void start_workers(void) {
    const char *chosen = getenv("KILN_NUM_THREADS");
    long wanted = chosen && atol(chosen) > 0 ? atol(chosen) : allowed_cpus();
    if (wanted > 4 * allowed_cpus()) wanted = 4 * allowed_cpus();
    for (; running < wanted; ++running) {
        pthread_t thread;
        if (pthread_create(&thread, 0, worker, 0) != 0) break;
        pthread_detach(thread);
    }
}

long kiln_parallel_threads(void) {
    pthread_once(&pool.started, start_workers);
    return running;
}

void kiln_parallel(long tasks, void *context, kiln_task body) {
    if (tasks <= 1 || pthread_mutex_trylock(&pool.job) != 0) {  // nested or concurrent callers run serially
        for (long i = 0; i < tasks; ++i) body(context, i);
        return;
    }
    pthread_once(&pool.started, start_workers);
    // Close the finished job under a new epoch before changing the fields, so that a worker still
    // reading them cannot claim a task with a mix of old and new; then open the job under the next.
    const long epoch = EPOCH(atomic_load(&pool.state)) + 2;
    atomic_store(&pool.state, (epoch - 1) << INDEX_BITS | INDEX(-1L));
    atomic_store_explicit(&pool.tasks, tasks, memory_order_relaxed);
    atomic_store_explicit(&pool.body, body, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.state, epoch << INDEX_BITS);  // publishes the fields above
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep);
    }
    work(epoch);
    while (atomic_load(&pool.done) < tasks) pause_briefly();
    pthread_mutex_unlock(&pool.job);
}
