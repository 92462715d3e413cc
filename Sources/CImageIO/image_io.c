#include "image_io.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>

// Larger images are refused before anything is allocated for them (decompression bombs).
enum { MAX_PIXELS = 1 << 28 };

int kiln_decode_png(const char *path, kiln_image *image, char *error, size_t error_size) {
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    memset(image, 0, sizeof *image);
    if (!png_image_begin_read_from_file(&png, path)) {
        snprintf(error, error_size, "%s", png.message);
        return 1;
    }
    const int color = png.format & PNG_FORMAT_FLAG_COLOR;
    const int alpha = png.format & PNG_FORMAT_FLAG_ALPHA;
    png.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    if ((unsigned long long)png.width * png.height > MAX_PIXELS) {
        snprintf(error, error_size, "%u×%u pixels is more than the %d-pixel limit", png.width, png.height, MAX_PIXELS);
        png_image_free(&png);
        return 1;
    }
    image->pixels = malloc(PNG_IMAGE_SIZE(png));
    if (!image->pixels) {
        png_image_free(&png);
        snprintf(error, error_size, "out of memory");
        return 1;
    }
    if (!png_image_finish_read(&png, NULL, image->pixels, 0, NULL)) {
        snprintf(error, error_size, "%s", png.message);
        kiln_image_free(image);
        return 1;
    }
    image->width = (int)png.width;
    image->height = (int)png.height;
    image->channels = (int)PNG_IMAGE_PIXEL_CHANNELS(png.format);
    return 0;
}

int kiln_encode_png(const uint8_t *pixels, int width, int height, int channels, uint8_t **png, size_t *size,
                    char *error, size_t error_size) {
    *png = NULL;
    *size = 0;
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || (long long)width * height > MAX_PIXELS) {
        snprintf(error, error_size, "cannot encode %d×%d pixels of %d channels", width, height, channels);
        return 1;
    }
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_alloc_size_t bytes = 0;
    if (!png_image_write_to_memory(&image, NULL, &bytes, 0, pixels, 0, NULL)) {  // measures
        snprintf(error, error_size, "%s", image.message);
        return 1;
    }
    *png = malloc(bytes);
    if (!*png) {
        snprintf(error, error_size, "out of memory");
        return 1;
    }
    if (!png_image_write_to_memory(&image, *png, &bytes, 0, pixels, 0, NULL)) {
        snprintf(error, error_size, "%s", image.message);
        free(*png);
        *png = NULL;
        return 1;
    }
    *size = bytes;
    return 0;
}

struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
};

static void jpeg_fail(j_common_ptr info) {
    longjmp(((struct jpeg_failure *)info->err)->jump, 1);
}

int kiln_decode_jpeg(const char *path, kiln_image *image, char *error, size_t error_size) {
    memset(image, 0, sizeof *image);
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "cannot open file");
        return 1;
    }
    struct jpeg_decompress_struct info;
    struct jpeg_failure failure;
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail;
    if (setjmp(failure.jump)) {
        char message[JMSG_LENGTH_MAX];
        failure.manager.format_message((j_common_ptr)&info, message);
        snprintf(error, error_size, "%s", message);
        jpeg_destroy_decompress(&info);
        fclose(file);
        kiln_image_free(image);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_read_header(&info, TRUE);
    if (info.jpeg_color_space != JCS_GRAYSCALE) info.out_color_space = JCS_RGB;
    if ((unsigned long long)info.image_width * info.image_height > MAX_PIXELS) {
        snprintf(error, error_size, "%u×%u pixels is more than the %d-pixel limit", info.image_width, info.image_height, MAX_PIXELS);
        jpeg_destroy_decompress(&info);
        fclose(file);
        return 1;
    }
    jpeg_start_decompress(&info);
    image->width = (int)info.output_width;
    image->height = (int)info.output_height;
    image->channels = info.output_components;
    const size_t stride = (size_t)image->width * (size_t)image->channels;
    image->pixels = malloc(stride * (size_t)image->height);
    if (!image->pixels) {
        snprintf(error, error_size, "out of memory");
        jpeg_destroy_decompress(&info);
        fclose(file);
        return 1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = image->pixels + stride * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    fclose(file);
    return 0;
}

void kiln_image_free(kiln_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}
