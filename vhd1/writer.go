package vhd1

import (
	"fmt"
	"io"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// WriteAt writes p at virtual offset off. Any offset and length inside
// the virtual size is accepted; partial sectors are merged with what the
// disk (or, for a differencing disk, its parent) holds. New blocks are
// allocated crash-safely in the order of FORMATS.md 2.9.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, vdisk.ErrClosed
	}
	if d.readOnly {
		return 0, vdisk.ErrReadOnly
	}
	if off < 0 || off > d.Size() || int64(len(p)) > d.Size()-off {
		return 0, fmt.Errorf("vhd: write [%d, +%d) beyond size %d: %w",
			off, len(p), d.Size(), vdisk.ErrOutOfRange)
	}
	if d.header == nil {
		// Fixed disk: the data is a raw image before the footer.
		return d.f.WriteAt(p, off)
	}
	bs := int64(d.header.BlockSize)
	done := 0
	for done < len(p) {
		i, in := off/bs, off%bs
		n := int(min(int64(len(p)-done), bs-in))
		if err := d.writeBlock(i, in, p[done:done+n]); err != nil {
			return done, err
		}
		done += n
		off += int64(n)
	}
	return done, nil
}

// writeBlock writes p at offset in of block i, allocating the block if
// needed.
func (d *Disk) writeBlock(i, in int64, p []byte) error {
	a := in / SectorSize * SectorSize
	b := (in + int64(len(p)) + SectorSize - 1) / SectorSize * SectorSize
	buf := p
	if a != in || b != in+int64(len(p)) {
		buf = make([]byte, b-a)
		if err := d.fillPartial(i, a, buf, in != a, in+int64(len(p)) != b); err != nil {
			return err
		}
		copy(buf[in-a:], p)
	}
	if d.bat[i] == unused {
		return d.allocate(i, a, buf)
	}
	return d.writeAllocated(i, a, buf)
}

// fillPartial fills the first and/or last sector of buf, which holds
// block i from offset a, with the disk's current content, so a write of
// part of a sector keeps the rest.
func (d *Disk) fillPartial(i, a int64, buf []byte, head, tail bool) error {
	base := i * int64(d.header.BlockSize)
	last := int64(len(buf)) - SectorSize
	if head {
		if err := d.read(buf[:SectorSize], base+a); err != nil {
			return err
		}
	}
	if tail && (last > 0 || !head) {
		if err := d.read(buf[last:], base+a+last); err != nil {
			return err
		}
	}
	return nil
}

// writeAllocated writes whole sectors buf at offset a of allocated block
// i, then marks them in the bitmap. The data is synced before the bitmap
// is written, so a crash never exposes sectors not yet written.
func (d *Disk) writeAllocated(i, a int64, buf []byte) error {
	bm, err := d.bitmap(i)
	if err != nil {
		return err
	}
	start := int64(d.bat[i]) * SectorSize
	if _, err := d.f.WriteAt(buf, start+d.bmSize+a); err != nil {
		return err
	}
	s0, s1 := a/SectorSize, (a+int64(len(buf)))/SectorSize
	lo, hi := int64(-1), int64(-1)
	for s := s0; s < s1; s++ {
		if !bitSet(bm, s) {
			if lo < 0 {
				lo = s
			}
			hi = s
		}
	}
	if lo < 0 {
		return nil
	}

	// The data must be durable before the bits that expose it.
	if err := d.f.Sync(); err != nil {
		return err
	}
	for s := s0; s < s1; s++ {
		setBit(bm, s)
	}
	// Write the bitmap sectors that changed.
	b0 := lo / 8 / SectorSize * SectorSize
	b1 := (hi/8/SectorSize + 1) * SectorSize
	_, err = d.f.WriteAt(bm[b0:b1], start+b0)
	return err
}

// allocate appends block i holding the whole sectors buf at offset a,
// following FORMATS.md 2.9.
func (d *Disk) allocate(i, a int64, buf []byte) error {
	bs := int64(d.header.BlockSize)
	start := d.next
	if start/SectorSize > unused-1 {
		return fmt.Errorf("vhd: block %d would start at 0x%x, beyond the "+
			"2 TiB a BAT entry can address: %w", i, start,
			vdisk.ErrInvalidArgument)
	}
	bm := make([]byte, d.bmSize)
	if d.footer.DiskType == DiskTypeDifferencing {
		// Differencing: exactly the sectors written; the others still
		// come from the parent.
		for s := a / SectorSize; s < (a+int64(len(buf)))/SectorSize; s++ {
			setBit(bm, s)
		}
	} else {
		// Dynamic: every sector marked, as qemu does; sectors not
		// written read as zeros because the block is zero-filled.
		for k := range bm {
			bm[k] = 0xFF
		}
	}
	// Step 2 overwrites the old end footer with the bitmap; until step
	// 3 lands, the copy at offset 0 is the only footer. Repair it first.
	if d.copyStale {
		if _, err := d.f.WriteAt(d.footer.Encode(), 0); err != nil {
			return err
		}
		if err := d.f.Sync(); err != nil {
			return err
		}
		d.copyStale = false
	}
	dirty := d.tailDirty
	d.tailDirty = true

	// Step 2: the bitmap and the data.
	if _, err := d.f.WriteAt(bm, start); err != nil {
		return err
	}
	data := start + d.bmSize
	if dirty && d.footer.DiskType != DiskTypeDifferencing {
		// An earlier allocation failed after writing here: the space
		// past the old end is not known to be zero, so zero the rest
		// of the block.
		if err := writeZeros(d.f, data, a); err != nil {
			return err
		}
		tail := a + int64(len(buf))
		if err := writeZeros(d.f, data+tail, bs-tail); err != nil {
			return err
		}
	}
	if _, err := d.f.WriteAt(buf, data+a); err != nil {
		return err
	}

	// Step 3: the footer at the new end, flushed.
	end := data + bs
	if _, err := d.f.WriteAt(d.footer.Encode(), end); err != nil {
		return err
	}
	if err := d.f.Sync(); err != nil {
		return err
	}

	// Step 4: the BAT entry, flushed.
	var e [4]byte
	be.PutUint32(e[:], uint32(start/SectorSize))
	if _, err := d.f.WriteAt(e[:], int64(d.header.TableOffset)+4*i); err != nil {
		return err
	}
	d.bat[i] = uint32(start / SectorSize)
	d.next, d.fileSize, d.footerSrc = end, end+FooterSize, "end"
	d.tailDirty = false
	d.cache.put(i, bm)
	return d.f.Sync()
}

// writeZeros writes n zero bytes at off in bounded chunks.
func writeZeros(w io.WriterAt, off, n int64) error {
	zero := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zero)))
		if _, err := w.WriteAt(zero[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
