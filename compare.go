package vhd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
)

// Difference says where the contents of two disks first differ.
type Difference struct {
	// Offset is the first virtual offset whose byte differs. When the
	// disks are equal over the shorter one's size but their sizes
	// differ, it is that size.
	Offset int64
	// SizeA and SizeB are the virtual sizes of the two disks.
	SizeA, SizeB int64
}

// Compare compares the virtual contents of a and b, which may be of any
// formats, and returns nil when they are equal byte for byte (sizes
// included), or where they first differ.
//
// Ranges that both disks map as zero or unallocated are not read; a range
// that one maps as data and the other as zeros is read on the data side
// only and checked for zeros.
func Compare(ctx context.Context, a, b Disk) (*Difference, error) {
	sa, sb := a.Size(), b.Size()
	common := min(sa, sb)
	var diff int64 = -1
	bufA := make([]byte, copyChunk)
	bufB := make([]byte, copyChunk)
	for off := int64(0); off < common && diff < 0; off += mapWindow {
		n := min(mapWindow, common-off)
		ea, err := mapChecked(a, off, n)
		if err != nil {
			return nil, fmt.Errorf("compare: map first disk: %w", err)
		}
		eb, err := mapChecked(b, off, n)
		if err != nil {
			return nil, fmt.Errorf("compare: map second disk: %w", err)
		}
		err = overlap(ea, eb, func(start, end int64, dataA, dataB bool) (bool, error) {
			for pos := start; pos < end; {
				if err := ctx.Err(); err != nil {
					return false, err
				}
				m := min(end, (pos/copyChunk+1)*copyChunk) - pos
				at, err := compareChunk(a, b, dataA, dataB, bufA[:m], bufB[:m], pos)
				if err != nil {
					return false, err
				}
				if at >= 0 {
					diff = pos + at
					return true, nil
				}
				pos += m
			}
			return false, nil
		})
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	switch {
	case diff >= 0:
		return &Difference{Offset: diff, SizeA: sa, SizeB: sb}, nil
	case sa != sb:
		return &Difference{Offset: common, SizeA: sa, SizeB: sb}, nil
	}
	return nil, nil
}

func mapChecked(d Disk, off, n int64) ([]Extent, error) {
	ext, err := d.Map(off, n)
	if err != nil {
		return nil, err
	}
	return ext, checkMap(ext, off, n)
}

// overlap walks two maps of the same range together and calls fn for
// every piece where at least one side holds data; fn returns true to
// stop.
func overlap(ea, eb []Extent, fn func(start, end int64, dataA, dataB bool) (bool, error)) error {
	i, j := 0, 0
	for i < len(ea) && j < len(eb) {
		start := max(ea[i].Offset, eb[j].Offset)
		end := min(ea[i].End(), eb[j].End())
		dataA, dataB := ea[i].State == Data, eb[j].State == Data
		if dataA || dataB {
			stop, err := fn(start, end, dataA, dataB)
			if err != nil || stop {
				return err
			}
		}
		if ea[i].End() == end {
			i++
		}
		if eb[j].End() == end {
			j++
		}
	}
	return nil
}

// compareChunk reads the data sides of one chunk at off and returns the
// index of the first differing byte, or -1.
func compareChunk(a, b Disk, dataA, dataB bool, bufA, bufB []byte, off int64) (int64, error) {
	var errA, errB error
	if dataA && dataB {
		var wg sync.WaitGroup
		wg.Go(func() { errB = readFull(b, bufB, off) })
		errA = readFull(a, bufA, off)
		wg.Wait()
	} else if dataA {
		errA = readFull(a, bufA, off)
		clear(bufB)
	} else {
		errB = readFull(b, bufB, off)
		clear(bufA)
	}
	if errA != nil {
		return -1, fmt.Errorf("read first disk: %w", errA)
	}
	if errB != nil {
		return -1, fmt.Errorf("read second disk: %w", errB)
	}
	if bytes.Equal(bufA, bufB) {
		return -1, nil
	}
	for i := range bufA {
		if bufA[i] != bufB[i] {
			return int64(i), nil
		}
	}
	return -1, nil
}

func readFull(d Disk, buf []byte, off int64) error {
	n, err := d.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("at %d: %w", off+int64(n), err)
}
