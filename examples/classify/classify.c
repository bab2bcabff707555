/* Classify a 36x36 PGM with the exported letter model (no jx):
 *   cc -std=c99 -O2 -I OUT classify.c OUT/letters_model.c -lm -o classify
 *   ./classify glyph.pgm */
#include "letters_model.h"

#include <stdio.h>

static float pixels[LETTERS_MODEL_INPUT_0_SIZE], logits[LETTERS_MODEL_OUTPUT_0_SIZE];
static unsigned char bytes[LETTERS_MODEL_INPUT_0_SIZE];
static double workspace[LETTERS_MODEL_WORKSPACE_BYTES / sizeof(double) + 1];

int main(int argc, char **argv) {
  FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
  int w = 0, h = 0, maxval = 0, best = 0, i;
  if (!f) {
    fprintf(stderr, "usage: classify IMAGE.pgm (binary P5, 36x36)\n");
    return 2;
  }
  if (fscanf(f, "P5 %d %d %d", &w, &h, &maxval) != 3 || (long)w * h != LETTERS_MODEL_INPUT_0_SIZE ||
      maxval != 255 || fgetc(f) == EOF || fread(bytes, 1, sizeof bytes, f) != sizeof bytes) {
    fprintf(stderr, "classify: %s is not a 36x36 8-bit binary PGM\n", argv[1]);
    return 1;
  }
  fclose(f);
  for (i = 0; i < LETTERS_MODEL_INPUT_0_SIZE; i++) pixels[i] = bytes[i];
  {
    const void *in[1] = {pixels};
    void *out[1] = {logits};
    if (letters_model(in, out, workspace)) return 1;
  }
  for (i = 1; i < LETTERS_MODEL_OUTPUT_0_SIZE; i++)
    if (logits[i] > logits[best]) best = i;
  printf("%s: '%c'\n", argv[1], 'a' + best);
  return 0;
}
