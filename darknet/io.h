/* Files for the gsl command and its error convention (darknet/io.c). */
#ifndef GSL_IO_H
#define GSL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
/* Writes a small file atomically: to PATH.tmp, synced, renamed, the folder synced. */
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

/* The text of a line without its leading and trailing spaces, tabs and line end (in place). */
char *gsl_trim(char *s);

#endif
