package vhdx

import (
	"io"
	"sort"
)

// overlay shows a file as it would be after log replay, without writing
// it: a read-only open of a file with a dirty log routes every read
// through it (FORMATS.md 3.5.3, "Read-only opens").
type overlay struct {
	base     io.ReaderAt
	baseSize int64
	size     int64            // file length after replay
	pages    map[int64][]byte // 4 KiB-aligned offset -> replayed page
	offsets  []int64          // sorted keys of pages
	zeros    []span           // sorted, merged zeroed ranges
}

// span is a half-open byte range.
type span struct{ off, end int64 }

// newOverlay applies the updates of seq in order over base.
func newOverlay(base io.ReaderAt, baseSize int64, seq *logSequence) *overlay {
	o := &overlay{base: base, baseSize: baseSize, size: baseSize,
		pages: map[int64][]byte{}}
	var zeros []span
	for _, u := range seq.Updates {
		if u.Data != nil {
			o.pages[u.Offset] = u.Data
			o.size = max(o.size, u.Offset+int64(len(u.Data)))
			continue
		}
		z := span{u.Offset, u.Offset + u.ZeroLength}
		for p := range o.pages {
			if p >= z.off && p < z.end {
				delete(o.pages, p)
			}
		}
		zeros = append(zeros, z)
		o.size = max(o.size, z.end)
	}
	if int64(seq.LastFileOffset) > o.size && seq.LastFileOffset <= maxFileOffset {
		o.size = int64(seq.LastFileOffset)
	}
	for p := range o.pages {
		o.offsets = append(o.offsets, p)
	}
	sort.Slice(o.offsets, func(i, j int) bool { return o.offsets[i] < o.offsets[j] })
	sort.Slice(zeros, func(i, j int) bool { return zeros[i].off < zeros[j].off })
	for _, z := range zeros {
		if n := len(o.zeros); n > 0 && z.off <= o.zeros[n-1].end {
			o.zeros[n-1].end = max(o.zeros[n-1].end, z.end)
			continue
		}
		o.zeros = append(o.zeros, z)
	}
	return o
}

// ReadAt reads the replayed view; past the replayed length it returns
// io.EOF like a file.
func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > o.size-off {
		p = p[:o.size-off]
	}
	done := 0
	for done < len(p) {
		cur := off + int64(done)
		rest := p[done:]
		page := cur &^ (4*kiB - 1)
		if data, ok := o.pages[page]; ok {
			done += copy(rest, data[cur-page:])
			continue
		}
		// Up to the next replayed page or zero-range boundary.
		next := cur + int64(len(rest))
		if i := sort.Search(len(o.offsets), func(i int) bool { return o.offsets[i] > cur }); i < len(o.offsets) {
			next = min(next, o.offsets[i])
		}
		i := sort.Search(len(o.zeros), func(i int) bool { return o.zeros[i].end > cur })
		inZero := i < len(o.zeros) && o.zeros[i].off <= cur
		if inZero {
			next = min(next, o.zeros[i].end)
		} else if i < len(o.zeros) {
			next = min(next, o.zeros[i].off)
		}
		chunk := rest[:next-cur]
		if inZero {
			clear(chunk)
		} else if err := readZeroFill(o.base, chunk, cur, o.baseSize); err != nil {
			return done, err
		}
		done += len(chunk)
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// readZeroFill reads p at off from r, whose data ends at size; bytes
// at or beyond size read as zeros.
func readZeroFill(r io.ReaderAt, p []byte, off, size int64) error {
	n := 0
	if off < size {
		m := min(int64(len(p)), size-off)
		k, err := r.ReadAt(p[:m], off)
		if k < int(m) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		n = int(m)
	}
	clear(p[n:])
	return nil
}
