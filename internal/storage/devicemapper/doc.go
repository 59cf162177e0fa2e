// Package devicemapper creates and removes device-mapper devices directly
// through the /dev/mapper/control ioctls (create, table load, resume,
// remove), without dmsetup, and builds the linear, verity and crypt target
// tables the storage kinds need. The device node /dev/mapper/<name> is made
// with mknod below an injectable /dev root.
package devicemapper
