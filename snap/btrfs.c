/* stub: to be written */
#include "autoconf.h"
