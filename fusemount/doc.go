// Package fusemount serves the raw view of a virtual disk as one file in
// a FUSE file system, so that the kernel can put a loop device on it and
// a virtual disk of any format becomes a block device.
//
// # What it serves
//
// The mount holds a directory with one regular file (named "disk" unless
// [Options.Name] says otherwise) whose length is the disk's virtual size
// and whose bytes are the disk's content: reads go to the image's ReadAt,
// writes to its WriteAt. The file is opened with FOPEN_DIRECT_IO, so the
// kernel keeps no page cache of its own for it and every read and write
// reaches the image.
//
//   - A read-only mount ([Options.ReadOnly]) is mounted "ro", refuses
//     opens for writing and fails writes with EROFS.
//   - fsync, and the flush sent when a descriptor is closed, call the
//     image's Sync, so a loop device's flush requests reach the disk.
//   - The file cannot be resized (EPERM) and writes past its end fail
//     with ENOSPC. No other file can be created.
//
// # Lifetime
//
// [Mount] returns once the kernel has mounted the file system;
// [Server.Wait] returns when it has been unmounted, by [Server.Unmount]
// or by umount(8)/fusermount3 -u. The image is not closed by this
// package: the caller syncs and closes it after Wait.
//
// Mounting needs /dev/fuse and either root (mount(2) is called directly)
// or fusermount3. On other systems [Mount] returns an error wrapping
// [errors.ErrUnsupported].
package fusemount
