/* The project's own layer types, registered with the plugin registry by gsl_registry_install().
 * Each layer file exports a `<name>_register(void)` that calls gsl_registry_add; list them here. */
#include "registry.h"

void gsl_register_builtin_layers(void)
{
}
