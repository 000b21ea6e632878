/* Files for the gsl command and its error convention (darknet/io.c). */
#ifndef GSL_IO_H
#define GSL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gslq.h"     /* GSLQ_TMP_PATH_MAX */
#include "registry.h" /* gsl_fail and GSL_ERRLEN: the one error convention */

/* Size of the message buffers of every gsl function that reports an error. */
#define GSL_DATA_ERRLEN GSL_ERRLEN
/* Opens a plain file for reading (never blocks on a named pipe; a pipe, device or folder is an error naming it):
 * a descriptor, or -1 with err filled. */
int gsl_open_regular(const char *path, char *err);
/* The same as a stdio stream (NULL on error). */
FILE *gsl_fopen_read(const char *path, char *err);
/* tmp -> path, durably (libgslq's gslq_commit_file). */
int gsl_commit_file(const char *tmp, const char *path, char *err);
/* The temporary a writer of path writes to (gslq_create_tmp: beside the file path names, created exclusively; tmp
 * holds GSLQ_TMP_PATH_MAX bytes); NULL with err. */
FILE *gsl_create_tmp(const char *path, char *tmp, char *err);
/* Closes f (the temporary tmp) and commits it to path (gsl_commit_file); on a write error removes it and reports. */
int gsl_close_commit(FILE *f, const char *tmp, const char *path, char *err);
/* Writes a small file atomically: to a temporary beside it, synced, renamed, the folder synced. */
int gsl_write_atomic(const char *path, const void *data, size_t n, char *err);
/* mkdir -p. */
int gsl_mkdirs(const char *path, char *err);
/* Size of a file in bytes, -1 when it cannot be read. */
long long gsl_file_size(const char *path);
/* CRC-32 of a whole regular file. */
int gsl_file_crc(const char *path, uint32_t *crc, char *err);
/* FNV-1a (32-bit) of a whole regular file: what checkpoint manifests (version 3) record. A file that ends with its
 * own CRC-32 (codebooks, optimizer state) has the same CRC-32 as every other such file of its size, whatever it holds
 * (CRC-32 is linear: the residue of a message followed by its CRC is a constant), so a CRC cannot tell two of them
 * apart; FNV-1a's multiplications are not linear, and any one changed byte changes it. */
int gsl_file_digest(const char *path, uint32_t *crc, char *err);
/* FNV-1a (32-bit), chainable: start from GSL_FNV1A_INIT, pass the previous value on. */
#define GSL_FNV1A_INIT 2166136261u
uint32_t gsl_fnv1a(uint32_t h, const void *buf, size_t n);

/* The text of a line without its leading and trailing spaces, tabs and line end (in place). */
char *gsl_trim(char *s);

#endif
