// PNG and JPEG decoding (and PNG encoding) through libpng and libjpeg-turbo, kept in C because both report errors
// with setjmp/longjmp, which Swift cannot take part in.
#ifndef KILN_IMAGE_IO_H
#define KILN_IMAGE_IO_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *pixels;   // rows of width * channels bytes; free with kiln_image_free
    int width, height, channels;
} kiln_image;

// Decodes a PNG (gray, gray+alpha, RGB, RGBA, palette; 8 or 16 bit) to 8-bit gray or RGB(A).
// Returns 0 on success, else writes a message to `error` (at most `error_size` bytes).
int kiln_decode_png(const char *path, kiln_image *image, char *error, size_t error_size);

// Decodes a baseline or progressive JPEG to 8-bit gray or RGB.
int kiln_decode_jpeg(const char *path, kiln_image *image, char *error, size_t error_size);

void kiln_image_free(kiln_image *image);

// Encodes 8-bit gray (1 channel) or RGB (3) rows as a PNG in memory: `*png` (free with free()) of
// `*size` bytes. Returns 0 on success, else writes a message to `error`.
int kiln_encode_png(const uint8_t *pixels, int width, int height, int channels, uint8_t **png, size_t *size,
                    char *error, size_t error_size);
#endif
