/* ./darknet: upstream Darknet's command line, plus `gsl ...`.
 *
 * Darknet's own main (examples/darknet.c) is linked in renamed to darknet_main; every command other than `gsl`
 * goes to it unchanged. The layer plugin is installed first either way, so a cfg with [snap] or [similarity]
 * also parses under Darknet's own commands, and an unknown section stops with an error instead of being skipped. */
#include <string.h>

#include "gsl.h"
#include "registry.h"

int darknet_main(int argc, char **argv);

int main(int argc, char **argv)
{
    gsl_registry_install();
    if (argc >= 2 && strcmp(argv[1], "gsl") == 0) return gsl_main(argc - 1, argv + 1);
    return darknet_main(argc, argv);
}
