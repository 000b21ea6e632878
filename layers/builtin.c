/* The project's own layer types, registered with the plugin registry by gsl_registry_install().
 * Each layer file exports a `<name>_register(void)` that calls gsl_registry_add; list them here. */
#include "quantloss_layer.h"
#include "registry.h"
#include "similarity_layer.h"
#include "snap_layer.h"

void gsl_register_builtin_layers(void)
{
    snap_layer_register();
    quantloss_layer_register();
    similarity_layer_register();
}
