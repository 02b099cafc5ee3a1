#include <isa-l/igzip_lib.h>
#include <zstd.h>
#include <zlib.h>
