/*
 * version.h - tpwallet's release version, one place for every layer that
 * says it (`tpwallet version`, /metrics, the trace resource, the start
 * log line).
 */
#ifndef TPW_CORE_VERSION_H
#define TPW_CORE_VERSION_H

#define TPWALLET_VERSION "0.1.0"

#endif
