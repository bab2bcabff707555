/* The letter classifier on its own (build/examples/letters --help); `make
 * demo` runs the same through examples/demo.c. */
#include "letters.h"

int main(int argc, char **argv) { return letters_main(argc, argv); }
