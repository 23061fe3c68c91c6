package vhd1

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vhdkit/vhd/internal/testfile"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestCrashAllocation walks every mutating step of a block allocation
// (FORMATS.md 2.9): the n-th call fails, the machine crashes (unsynced
// writes are lost), and the file is reopened. It must open cleanly,
// hold the data synced before, show the new write entirely or not at
// all, pass Check, and accept further writes.
func TestCrashAllocation(t *testing.T) {
	base := sampleDynamic(t) // durable; blocks 0 and 2 allocated
	before := readAllBytes(t, base)
	newData := bytes.Repeat([]byte{0xC3}, 3000)
	const newOff = 2<<20 + 1000 // block 1, unallocated
	completed := false
	for n := 1; !completed; n++ {
		if n > 20 {
			t.Fatal("allocation never completed")
		}
		mem := testfile.FromBytes(base)
		faulty := &testfile.Faulty{File: mem, FailAt: n}
		d, err := OpenFile(faulty, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := d.WriteAt(newData, newOff)
		if werr == nil {
			werr = d.Sync()
		}
		completed = werr == nil
		if werr != nil && !errors.Is(werr, testfile.ErrInjected) {
			t.Fatalf("step %d: %v", n, werr)
		}
		after := mem.Crash()
		r, err := OpenFile(after, "", nil)
		if err != nil {
			t.Fatalf("step %d: reopen after crash: %v", n, err)
		}
		got := readAll(t, r, r.Size())
		want := append([]byte(nil), before...)
		if !bytes.Equal(got, want) {
			copy(want[newOff:], newData)
			if !bytes.Equal(got, want) {
				t.Fatalf("step %d: content is neither old nor new", n)
			}
		} else if completed {
			t.Fatalf("step %d: completed write lost", n)
		}
		expectNoErrors(t, after.Bytes())

		// The disk keeps working: write another block, reopen, check.
		if _, err := r.WriteAt([]byte("later"), 4<<20+3); err != nil {
			t.Fatalf("step %d: write after crash: %v", n, err)
		}
		copy(got[4<<20+3:], "later")
		r.Close()
		final := readAllBytes(t, after.Bytes())
		if !bytes.Equal(final, got) {
			t.Fatalf("step %d: content wrong after a later write", n)
		}
		expectNoErrors(t, after.Bytes())
	}
}

// TestFailedAllocationThenWrite: an allocation that fails after writing
// its data leaves stale bytes where the next block goes; the next block
// must still read as zeros outside what was written to it.
func TestFailedAllocationThenWrite(t *testing.T) {
	base := sampleDynamic(t)
	want := readAllBytes(t, base)
	mem := testfile.FromBytes(base)
	faulty := &testfile.Faulty{File: mem, FailAt: 3} // bitmap, data, footer fails
	d, err := OpenFile(faulty, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(bytes.Repeat([]byte{0xEE}, 1<<20), 2<<20); err == nil {
		t.Fatal("write did not fail")
	}
	faulty.FailAt = 0
	if _, err := d.WriteAt([]byte("tiny"), 3<<20); err != nil {
		t.Fatal(err)
	}
	copy(want[3<<20:], "tiny")
	if got := readAll(t, d, d.Size()); !bytes.Equal(got, want) {
		t.Error("stale bytes of the failed allocation are visible")
	}
	d.Close()
	if got := readAllBytes(t, mem.Bytes()); !bytes.Equal(got, want) {
		t.Error("stale bytes visible after reopen")
	}
	expectNoErrors(t, mem.Bytes())
}

// TestCrashDifferencingBitmap walks the steps of a write into an
// allocated differencing block that sets new bitmap bits: data, sync,
// bitmap. The parent's data shows until the bits are durable.
func TestCrashDifferencingBitmap(t *testing.T) {
	dir := t.TempDir()
	paths, _ := chain(t, dir, 4<<20, 2<<20, 1)
	child := fileBytes(t, paths[1])
	parentOpts := func() *vdisk.OpenOptions {
		return &vdisk.OpenOptions{Parent: vdisk.ParentPolicy{Path: paths[0]}}
	}
	// Find a sector of an allocated child block whose bit is clear.
	d, err := OpenFile(testfile.FromBytes(child), paths[1], parentOpts())
	if err != nil {
		t.Fatal(err)
	}
	target := int64(-1)
	for i, e := range d.bat {
		if e == unused {
			continue
		}
		bm, _ := d.bitmap(int64(i))
		for s := int64(0); s < 4096 && target < 0; s++ {
			if !bitSet(bm, s) {
				target = int64(i)*(2<<20) + s*512
			}
		}
	}
	d.Close()
	if target < 0 {
		t.Skip("no clear sector in an allocated block")
	}
	before := readAllBytes2(t, child, paths[1], parentOpts())
	data := bytes.Repeat([]byte{0x5D}, 700) // partial second sector
	for n := 1; ; n++ {
		mem := testfile.FromBytes(child)
		faulty := &testfile.Faulty{File: mem, FailAt: n}
		d, err := OpenFile(faulty, paths[1], parentOpts())
		if err != nil {
			t.Fatal(err)
		}
		_, werr := d.WriteAt(data, target+10)
		if werr == nil {
			werr = d.Sync()
		}
		d.Close()
		after := mem.Crash()
		got := readAllBytes2(t, after.Bytes(), paths[1], parentOpts())
		want := append([]byte(nil), before...)
		if !bytes.Equal(got, want) {
			copy(want[target+10:], data)
			if !bytes.Equal(got, want) {
				t.Fatalf("step %d: content is neither old nor new", n)
			}
		} else if werr == nil {
			t.Fatalf("step %d: completed write lost", n)
		}
		if werr == nil {
			break
		}
		if n > 20 {
			t.Fatal("write never completed")
		}
	}
}

func readAllBytes2(t *testing.T, b []byte, path string, opts *vdisk.OpenOptions) []byte {
	t.Helper()
	opts.ReadOnly = true
	d, err := OpenFile(testfile.FromBytes(b), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return readAll(t, d, d.Size())
}
