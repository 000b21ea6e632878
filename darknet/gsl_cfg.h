/* The whole-file check of a network cfg before upstream's parser (darknet/gsl_cfg.c). */
#ifndef GSL_CFG_H
#define GSL_CFG_H

/* 0, or -1 with a message naming the file, line, section and key: a file that is not text, an empty file, a first
 * section other than [net], an unknown section, a line that is neither a section nor key=value, an empty value, a
 * key given twice in a section, and in [net] an unknown key or a value that is not of the key's type. */
int gsl_cfg_check(const char *path, char *err);
/* Which of the sections names[] (NULL-terminated, at most 31) the cfg at path has: bit i for [names[i]] (0 when it
 * cannot be read). */
int gsl_cfg_sections(const char *path, const char *const *names);

#endif
