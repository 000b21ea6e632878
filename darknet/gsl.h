/* The `gsl` command: ./darknet gsl SUBCOMMAND ... */
#ifndef GSL_CMD_H
#define GSL_CMD_H

/* argv[0] is "gsl". Returns the process exit status: 0 ok, 1 runtime error, 2 usage error. */
int gsl_main(int argc, char **argv);

/* Subcommands, each given argv[0] = its own name. */
int gsl_quant_main(int argc, char **argv); /* darknet/gsl_quant.c */
int gsl_check_main(int argc, char **argv); /* darknet/gsl_check.c */
int gsl_train_main(int argc, char **argv); /* darknet/gsl_train.c */

#endif
