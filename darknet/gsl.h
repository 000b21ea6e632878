/* The `gsl` command: ./darknet gsl SUBCOMMAND ... */
#ifndef GSL_CMD_H
#define GSL_CMD_H

/* argv[0] is "gsl". Returns the process exit status: 0 ok, 1 runtime error, 2 usage error, and for `gsl train`
 * GSL_EXIT_PREEMPTED when a signal stopped it after writing a checkpoint (resume from it); 3 is a distributed run's
 * failed or hung rank (docs/training.md). */
#define GSL_EXIT_PREEMPTED 75
int gsl_main(int argc, char **argv);

/* Subcommands, each given argv[0] = its own name. */
int gsl_quant_main(int argc, char **argv); /* darknet/gsl_quant.c */
int gsl_check_main(int argc, char **argv); /* darknet/gsl_check.c */
int gsl_train_main(int argc, char **argv); /* darknet/gsl_train.c */

#endif
