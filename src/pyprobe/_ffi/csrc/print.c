/* libbpf's print callback: format the va_list here, hand Python the finished line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void _pyprobe_log(int level, const char *msg);

const int pyprobe_built_major = LIBBPF_MAJOR_VERSION;
const int pyprobe_built_minor = LIBBPF_MINOR_VERSION;

/* Messages above this libbpf level are dropped in C, before any Python call. */
static volatile int pyprobe_print_level = LIBBPF_WARN;

void pyprobe_set_print_level(int level)
{
    pyprobe_print_level = level;
}

static int pyprobe_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char small[1024];
    va_list again;
    int n;

    if ((int)level > pyprobe_print_level)
        return 0;
    va_copy(again, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n >= 0 && (size_t)n < sizeof(small)) {
        _pyprobe_log((int)level, small);
    } else if (n >= 0) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            _pyprobe_log((int)level, big);
            free(big);
        }
    }
    va_end(again);
    return n;
}

void pyprobe_install_print(void)
{
    libbpf_set_print(pyprobe_print);
}
