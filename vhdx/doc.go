// Package vhdx reads, writes, creates and checks VHDX virtual disks
// ([MS-VHDX] rev. 8.0; the project's FORMATS.md section 3 restates every
// rule this package follows, and section 5 lists what [Check] checks).
//
// # Supported
//
// Fixed, dynamic and differencing disks; parent chains of any depth;
// logical sectors of 512 and 4096 bytes; physical sector sizes of 512
// and 4096; block sizes of 1 to 256 MiB; virtual sizes up to 64 TiB;
// every payload block state, including ZERO, UNMAPPED (and its legacy
// value 5), UNDEFINED and PARTIALLY_PRESENT with sector bitmaps.
//
// Both headers are decoded and the current one chosen by sequence number
// ([MS-VHDX] 2.2.2); equal sequence numbers are accepted only when the
// two headers are byte-identical (Disk2VHD writes such files). A bad
// region table copy 1 falls back to copy 2.
//
// # The log
//
// A file whose header carries a LogGuid has updates in its log that must
// be replayed. A writable open replays them (after renewing
// FileWriteGuid) and clears LogGuid. A read-only open never writes: it
// replays into memory and routes every read, metadata and payload,
// through that view ([Disk.Info] reports log_state "dirty (replayed in
// memory)").
//
// # Writing
//
// Every change of the BAT or of a sector bitmap goes through the log:
// payload data is written and synced before the entry that points at it
// is logged, the entry is synced, then applied and synced. The first
// write of a session renews FileWriteGuid and DataWriteGuid with two
// synced header updates; the first log entry of a session sets a fresh
// LogGuid (after the entry is durable, so that a crash never leaves a
// LogGuid without an entry; see write.go). [Disk.Sync] and [Disk.Close]
// clear LogGuid again. New blocks are appended at the end of the file,
// 1 MiB-aligned. Writing zeros into a block that reads as zeros
// allocates nothing.
//
// A partial write into a block a differencing disk does not hold
// allocates the block, writes only the new sectors and marks them in the
// sector bitmap (PARTIALLY_PRESENT); nothing is copied from the parent.
// A write covering the whole block makes it FULLY_PRESENT.
//
// # New files
//
// [Create] lays files out as Windows does: the 1 MiB header section, a
// 1 MiB log at 1 MiB, the 1 MiB metadata region at 2 MiB, the BAT at
// 3 MiB and payload after it; both regions are marked Required. Dynamic
// and differencing disks default to 32 MiB blocks, fixed disks to 2 MiB
// (the sizes Windows uses, FORMATS.md 4.1); sectors default to 512-byte
// logical and 4096-byte physical, like Hyper-V. A fixed disk has every
// payload block FULLY_PRESENT and LeaveBlockAllocated set. A
// differencing disk copies size, sector sizes and Virtual Disk ID from
// its parent and records parent_linkage (the parent's DataWriteGuid),
// relative_path and absolute_win32_path (on systems without drive
// letters, \\?\ and the host path with backslashes: libvhdi needs the
// key).
//
// # Parents
//
// A parent is looked for at relative_path (against the child's
// directory), then under the stored file name in the child's directory,
// then at volume_path and absolute_win32_path when
// [vdisk.ParentPolicy].AllowAbsolute is set; [vdisk.ParentPolicy].Path
// replaces the search. Parents are opened read-only. The parent's
// current DataWriteGuid must equal parent_linkage or parent_linkage2 and
// its logical sector size the child's, or the open fails with
// [vdisk.ErrParentMismatch]; a parent found nowhere gives
// [vdisk.ErrParentNotFound] listing every path tried.
//
// # Limits
//
// A parent chain may be 64 disks deep; a deeper one (or a loop) is
// corrupt. A log entry that names a file offset beyond 65 TiB (the
// largest payload, 64 TiB, plus room for every structure) is corrupt:
// this is our bound, not the specification's, so that replaying a
// hostile log cannot extend a file without limit.
//
// # Not supported
//
// Resizing, merging, compaction, trimming (moving blocks to UNMAPPED),
// editing user metadata, and rewriting stale parent paths after a
// successful open are not implemented. Unknown regions and metadata
// items are preserved; one marked required makes the open fail with an
// error wrapping [errors.ErrUnsupported].
package vhdx
