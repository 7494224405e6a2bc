/* SPDX-License-Identifier: MIT */
/*
 * utf8.c - the bytes of a name. Names are the user's bytes: they are kept cut on a character
 * boundary (copy_name), and the writers escape whatever is not UTF-8 (json.c's json_str,
 * dump.c's print_quoted), both by asking utf8_len where a character ends.
 */
#include <string.h>

#include "trace_internal.h"

/* The length of the well-formed UTF-8 sequence that starts at s (1 to 4 bytes), or 0 when the
 * bytes there are not one (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF).
 * s is NUL-terminated, and a NUL is never a continuation byte: no read goes past it. */
size_t utf8_len(const unsigned char *s)
{
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        if (s[0] == 0xe0)
            lo = 0xa0; /* overlong below */
        else if (s[0] == 0xed)
            hi = 0x9f; /* surrogates above */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        if (s[0] == 0xf0)
            lo = 0x90; /* overlong below */
        else if (s[0] == 0xf4)
            hi = 0x8f; /* past U+10FFFF above */
    } else {
        return 0; /* a continuation byte, C0, C1, F5 to FF */
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Copies a name, cut to NAME_MAX_LEN - 1 bytes at most, on a character boundary: a UTF-8
 * character that does not fit is left out whole. A byte that is not UTF-8 is copied as it is
 * (a character of its own); the writers escape it (json_str, print_quoted). */
void copy_name(char dst[NAME_MAX_LEN], const char *src)
{
    size_t n = 0;
    while (src[n]) {
        size_t k = utf8_len((const unsigned char *)src + n);
        if (k == 0)
            k = 1;
        if (n + k > NAME_MAX_LEN - 1)
            break;
        n += k;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}
