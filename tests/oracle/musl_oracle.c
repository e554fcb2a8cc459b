/*
 * musl_oracle: ground truth for alertik's regex dialect.
 *
 * Build it against musl (alertik's official image is a static musl binary):
 *
 *     musl-gcc -static -O2 -o musl_oracle tests/oracle/musl_oracle.c
 *
 * stdin holds records "pattern\0subject\0". For each record it does what
 * alertik does, regcomp(REG_EXTENDED) then regexec with 32 slots and no flags,
 * and prints one JSON line (with the argument "icase", regcomp also gets
 * REG_ICASE, as for a rules-file rule with icase = true):
 *
 *     {"ok":false,"code":13,"error":"Repetition not preceded by valid expression"}
 *     {"ok":true,"nsub":2,"match":false}
 *     {"ok":true,"nsub":2,"match":true,"spans":[[0,5],[1,2],[-1,-1],...]}
 *
 * "spans" always has all 32 regmatch_t slots, so a test can check that musl
 * leaves the slots past re_nsub unset.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* alertik passes 32 slots to regexec (events.c). */
#define NSLOTS 32

static char *read_all(size_t *len)
{
	size_t cap = 1 << 16, n = 0, got;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	*len = n;
	return buf;
}

/* Error texts are plain ASCII, but escape quotes and backslashes anyway. */
static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int cflags = REG_EXTENDED;

static void run_one(const char *pattern, const char *subject)
{
	regex_t re;
	regmatch_t pm[NSLOTS];
	char err[256];
	int rc, i;

	rc = regcomp(&re, pattern, cflags);
	if (rc != 0) {
		regerror(rc, &re, err, sizeof err);
		printf("{\"ok\":false,\"code\":%d,\"error\":", rc);
		print_json_string(err);
		printf("}\n");
		return;
	}
	printf("{\"ok\":true,\"nsub\":%lu", (unsigned long)re.re_nsub);
	rc = regexec(&re, subject, NSLOTS, pm, 0);
	if (rc == REG_NOMATCH) {
		printf(",\"match\":false}\n");
	} else if (rc != 0) {
		regerror(rc, &re, err, sizeof err);
		printf(",\"match\":null,\"exec_error\":");
		print_json_string(err);
		printf("}\n");
	} else {
		printf(",\"match\":true,\"spans\":[");
		for (i = 0; i < NSLOTS; i++)
			printf("%s[%ld,%ld]", i ? "," : "", (long)pm[i].rm_so,
			       (long)pm[i].rm_eo);
		printf("]}\n");
	}
	regfree(&re);
}

int main(int argc, char **argv)
{
	size_t len, pos = 0;
	char *buf;

	if (argc > 1 && strcmp(argv[1], "icase") == 0)
		cflags |= REG_ICASE;
	buf = read_all(&len);
	if (!buf) {
		fprintf(stderr, "musl_oracle: out of memory\n");
		return 1;
	}
	while (pos < len) {
		const char *pattern = buf + pos;
		const char *subject;
		size_t plen = strnlen(pattern, len - pos);

		if (pos + plen >= len)
			break;
		subject = pattern + plen + 1;
		pos += plen + 1;
		if (pos + strnlen(subject, len - pos) >= len) {
			fprintf(stderr, "musl_oracle: truncated record\n");
			return 1;
		}
		pos += strlen(subject) + 1;
		run_one(pattern, subject);
		fflush(stdout);
	}
	free(buf);
	return 0;
}
