/* libFuzzer target for lib/inotify_decode.c: any bytes, as if read(2) from an
 * inotify fd. Build and run:
 *   clang -g -fsanitize=fuzzer,address -D_GNU_SOURCE -Ilib \
 *         tests/fuzz/fuzz_inotify.c lib/inotify_decode.c -o build/fuzz_inotify
 *   build/fuzz_inotify -max_total_time=60
 * Checks, beyond ASan's: the offset only moves forward and stays in the
 * buffer, names lie inside it and are NUL-terminated, and the classifier
 * always answers a valid kind. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inotify_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct inotify_rec rec;
        size_t offset = 0;
        int r;

        for (;;) {
                size_t before = offset;

                r = inotify_next(data, size, &offset, &rec);
                if (r <= 0)
                        break;
                if (offset <= before || offset > size)
                        abort();
                if (rec.name_len > 0) {
                        const uint8_t *name = (const uint8_t *)rec.name;

                        if (name < data + before || name + rec.name_len >= data + offset)
                                abort();
                }
                if (rec.name[rec.name_len] != '\0' || strlen(rec.name) != rec.name_len)
                        abort();
                if (!watch_event_kind_to_string(inotify_classify(rec.mask)))
                        abort();
        }
        if (r < 0 && r != -EBADMSG)
                abort();
        if (r < 0 && offset >= size)
                abort();
        return 0;
}
