// Package vhd1 reads, writes, creates and checks VHD (version 1) disk
// images: fixed, dynamic and differencing, as described in Microsoft's
// "Virtual Hard Disk Image Format Specification" 1.0 and FORMATS.md
// section 2.
//
// # Sizes
//
// The virtual size is the footer's Current Size, as Windows, Hyper-V,
// VirtualBox and libvhdi read it. The CHS geometry, which qemu and
// Virtual PC use for some creator codes, is reported by [Disk.Info] next
// to the size it addresses ("geometry", "chs_size") but never changes the
// size. New disks store the exact requested size (a multiple of 512) and
// the creator code "win ", which makes qemu-img read Current Size too;
// see the comment on the creator fields in create.go.
//
// # Footers
//
// The footer at the end of the file is authoritative; the old 511-byte
// footer is accepted. When the end of a dynamic or differencing disk is
// damaged (bad cookie or checksum, not an I/O error) the copy at offset
// 0 is used, and the next block allocation writes a fresh end footer.
// Reserved footer bytes are preserved when a footer is rewritten.
//
// # Writing
//
// Blocks are allocated in the crash-safe order of FORMATS.md 2.9: the
// bitmap and data, then the footer at the new end (synced), then the BAT
// entry (synced), then the copy at offset 0 if it had drifted. New
// blocks of a dynamic disk are zero-filled with every bitmap bit set, as
// qemu writes them; blocks of a differencing disk carry exact bits, and
// partial sectors are completed from the parent.
//
// # Differencing disks
//
// The parent is found through the W2ru locator (relative to the child's
// directory), W2ku (absolute, only with [vdisk.ParentPolicy]
// AllowAbsolute), MacX, then the Parent Unicode Name in the child's
// directory; ParentPolicy.Path replaces them all. The parent's Unique Id
// must match; a Parent Time Stamp that differs from the parent file's
// modification time is reported as a warning only. New differencing
// disks record W2ru and W2ku locators.
//
// # Not supported
//
// Resizing, compaction and the deprecated Wi2r, Wi2k and Mac alias
// locators (the last cannot be resolved; the first two are read but
// never tried). Logical sectors are always 512 bytes.
package vhd1
