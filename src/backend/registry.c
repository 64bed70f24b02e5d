/* backend/registry.c — maps a device to its backend. The CPU backend is always here; the CUDA
 * plugin is loaded on first use (backend/plugin.c); Vulkan comes later. */
#include "backend/backend.h"
#include "backend/plugin.h"

static const char *device_type_name(bn_device_type t)
{
    switch (t) {
    case BN_DEVICE_CPU: return "cpu";
    case BN_DEVICE_CUDA: return "cuda";
    case BN_DEVICE_VULKAN: return "vulkan";
    }
    return "?";
}

const bn_backend *bn__backend(const char *fn, bn_device d)
{
    if (d.type == BN_DEVICE_CPU && d.index == 0) return bn__cpu_backend();
    if (d.type == BN_DEVICE_CPU)
        return bn__error_null(BN_ERR_DEVICE, "%s: there is only one CPU device (cpu:0), not cpu:%d",
                              fn, d.index);
    if (d.type == BN_DEVICE_CUDA) return bn__plugin_backend(fn, d);
    return bn__error_null(BN_ERR_DEVICE,
                          "%s: device %s:%d is not available (no %s backend is loaded in this "
                          "build)",
                          fn, device_type_name(d.type), d.index, device_type_name(d.type));
}

bool bn_device_available(bn_device d)
{
    if (d.type == BN_DEVICE_CUDA) return bn__plugin_device_available(d);
    return d.type == BN_DEVICE_CPU && d.index == 0;
}

bool bn__same_device(const char *fn, const bn_tensor *a, const bn_tensor *b)
{
    bn_device da = a->storage->device, db = b->storage->device;
    if (da.type == db.type && da.index == db.index) return true;
    bn__error(BN_ERR_DEVICE, "%s: tensors are on different devices (%s:%d and %s:%d)", fn,
              device_type_name(da.type), da.index, device_type_name(db.type), db.index);
    return false;
}
