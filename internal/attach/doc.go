// Package attach turns a virtual disk into a Linux block device that
// outlives the process that asked for it.
//
// # How
//
// A raw image or a fixed VHD is a loop device on the file itself: the
// raw content starts at byte 0 and the loop's size limit is the virtual
// size (the VHD footer stays out of view).
//
// Every other disk is served by a background process: [Attach] starts
// the current executable again (/proc/self/exe) with the environment
// variable named by [ServeEnv] set to a state directory; the program's
// initialisation (package vhd does this) calls [Serve], which opens the
// disk with the engine, mounts a [fusemount] file system holding the
// disk's raw view at <state>/mnt and waits. A loop device is then put on
// <state>/mnt/disk. The server runs in its own session and is not a
// child that the caller must wait for.
//
// # State
//
// Each attached disk has a directory under [RunDir] (default /run/vhd)
// named after a hash of its absolute path. Its state.json records the
// disk's path, the loop device, whether it is read-only and the server's
// process id, so [Detach] and [Find] work from any process: by the
// disk's path or by the device. Loop devices with no state directory are
// still found by their backing file in /sys/block/loop*/loop.
//
// # Detach
//
// [Detach] refuses a device (or one of its partitions) that is mounted,
// clears the loop device, waits until the kernel has released it,
// unmounts the FUSE file system and waits for the server to sync and
// close the disk and exit; only then does it return. The server records
// the result of closing the disk, which Detach returns.
//
// Attaching needs root, /dev/loop-control and, for the FUSE case,
// /dev/fuse. Elsewhere, and on other systems, the functions return
// errors wrapping [errors.ErrUnsupported].
package attach
