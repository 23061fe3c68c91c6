// Package vhd reads, writes, creates, converts and checks virtual disks
// in Microsoft's VHD and VHDX formats and raw images, in pure Go.
//
// # Disks
//
// [Open] opens a disk of any supported format, detecting the format from
// the file's content ([Detect]), never from its name. [Create] makes a
// new disk. Both return a [Disk]: an [io.ReaderAt] and [io.WriterAt]
// over the virtual content, with its size, an allocation map
// ([Disk.Map]) and a description ([Disk.Info]). Differencing disks open
// with their whole parent chain; reads fall through to the parents.
//
// The format packages (vhdx, vhd1 and raw) implement the formats; this
// package chooses between them and re-exports their shared types, so a
// program needs only this import. The type names (Format, Type, Extent,
// Info, Finding, the options) are aliases of one set of definitions, and
// the error values are the same values every format package returns:
// test them with [errors.Is], as in errors.Is(err, vhd.ErrCorrupt).
//
// # Formats
//
//   - VHDX ([FormatVHDX]): fixed, dynamic and differencing, with the
//     metadata log.
//   - VHD version 1 ([FormatVHD]): fixed, dynamic and differencing.
//   - Raw images ([FormatRaw]): the file is the disk. Holes of a sparse
//     file show as unallocated in the map on Linux.
//
// A format whose package is not built in gives an error wrapping
// [errors.ErrUnsupported].
//
// # Converting and comparing
//
// [Convert] copies a disk into a new file of any format. It copies only
// data: ranges the source maps as zero or unallocated are skipped, and
// so is every all-zero 4 KiB piece, so a sparse source gives a sparse or
// dynamic destination. The destination is written under a temporary name
// and renamed into place only when complete, so a failed or cancelled
// conversion leaves nothing behind. A differencing chain converts to a
// standalone disk.
//
// [Compare] tells whether two disks, of any formats, hold the same
// content, and where they first differ.
//
// # Checking
//
// [Check] reports every rule of its format that a file breaks (see
// FORMATS.md section 5 in the project's documentation) as a [Finding]
// with the file offset of the structure at fault. It opens the file
// read-only and never writes it.
//
// # The go-winio API
//
// This package also offers every exported name of go-winio's vhd
// package (github.com/Microsoft/go-winio/vhd, v0.6.4): [CreateVhdx],
// [CreateDiffVhd], [CreateVirtualDisk], [OpenVirtualDisk],
// [OpenVirtualDiskWithParameters], [AttachVirtualDisk], [AttachVhd],
// [DetachVirtualDisk], [DetachVhd], [GetVirtualDiskPhysicalPath],
// [GetVirtualDiskIdentifier] and [SetVirtualDiskIdentifier], with their
// types and constants. On Windows they have go-winio's exact signatures
// and call VirtDisk, so changing the import path is the whole migration;
// three defects of the original are fixed there ([AttachVhd] keeps the
// disk attached, block sizes no longer overflow uint32, and the
// identifier functions tell VHD from VHDX by content, not by a
// case-sensitive suffix).
//
// Elsewhere the same calls run on this package's engine. Creating,
// opening and the identifier pair work on every system. On Linux,
// attaching gives a block device: a raw image or fixed VHD through a
// loop device, any other disk through a raw view served over FUSE with
// a loop device on top; the attach lasts until [DetachVhd] or
// [DetachVirtualDisk]. Where a system cannot attach, the call returns an
// error wrapping [errors.ErrUnsupported]. Handles are this package's
// own values: they are not Windows handles and mean nothing to other
// code.
//
// # Concurrency
//
// A [Disk] serves ReadAt from many goroutines at once; WriteAt is safe
// alongside them. Sync and Close must not race with other calls.
package vhd
