/* classify: Fashion-MNIST images through a Kiln model compiled into this
 * program (see CMakeLists.txt: kiln_add_model). Plain C, no framework.
 *
 *   classify t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz [count]
 */
#include "fashion.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

static const char *kClasses[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Reads an IDX file's header (big-endian) and then `bytes` bytes of data. */
static int read_idx(const char *path, uint32_t magic, int dims, unsigned char *out, size_t bytes) {
  gzFile file = gzopen(path, "rb");
  if (!file) {
    fprintf(stderr, "classify: cannot open %s\n", path);
    return -1;
  }
  unsigned char header[16];
  int header_size = 4 + 4 * dims;
  int ok = gzread(file, header, header_size) == header_size &&
           ((uint32_t)header[0] << 24 | header[1] << 16 | header[2] << 8 | header[3]) == magic &&
           gzread(file, out, (unsigned)bytes) == (int)bytes;
  gzclose(file);
  if (!ok)
    fprintf(stderr, "classify: %s is not an IDX file with enough data\n", path);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: classify IMAGES.gz LABELS.gz [count]\n");
    return 2;
  }
  int count = argc > 3 ? atoi(argv[3]) : 100;
  if (count < 1 || count > 10000) {
    fprintf(stderr, "classify: count must be in [1, 10000]\n");
    return 2;
  }
  unsigned char *pixels = malloc((size_t)count * FASHION_INPUT_SAMPLE_SIZE);
  unsigned char *labels = malloc((size_t)count);
  float *input = malloc(sizeof(float) * count * FASHION_INPUT_SAMPLE_SIZE);
  float *logits = malloc(sizeof(float) * count * FASHION_OUTPUT_SAMPLE_SIZE);
  if (!pixels || !labels || !input || !logits ||
      read_idx(argv[1], 0x803, 3, pixels, (size_t)count * FASHION_INPUT_SAMPLE_SIZE) ||
      read_idx(argv[2], 0x801, 1, labels, (size_t)count))
    return 1;
  /* The model was trained on pixels scaled to [0, 1]. */
  for (long i = 0; i < (long)count * FASHION_INPUT_SAMPLE_SIZE; ++i)
    input[i] = pixels[i] / 255.0f;

  /* A bad call reports an error code and a message, and does not crash. */
  int status = fashion_infer(NULL, 1, logits);
  printf("bad call: status %d, message: %s\n", status, fashion_last_error());

  fashion_set_num_threads(2);
  if (fashion_infer(input, count, logits) != 0) {
    fprintf(stderr, "classify: %s\n", fashion_last_error());
    return 1;
  }
  int correct = 0;
  for (int i = 0; i < count; ++i) {
    const float *row = logits + i * FASHION_OUTPUT_SAMPLE_SIZE;
    int best = 0;
    for (int c = 1; c < FASHION_OUTPUT_SAMPLE_SIZE; ++c)
      if (row[c] > row[best])
        best = c;
    correct += best == labels[i];
    if (i < 5)
      printf("image %d: predicted %s, label %s\n", i, kClasses[best], kClasses[labels[i]]);
  }
  printf("classified %d images, %d correct; weights %d bytes, scratch %d bytes per sample\n",
         count, correct, FASHION_WEIGHT_BYTES, FASHION_SCRATCH_BYTES_PER_SAMPLE);
  free(pixels);
  free(labels);
  free(input);
  free(logits);
  return 0;
}
