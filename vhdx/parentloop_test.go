package vhdx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestParentLoop opens a child whose parent names itself as its own
// parent, with a matching DataWriteGuid: the chain never ends, and Open
// and Check must stop with ErrCorrupt after a bounded number of opens
// instead of recursing until memory runs out.
func TestParentLoop(t *testing.T) {
	dir := t.TempDir()
	ppath, cpath := filepath.Join(dir, "p.vhdx"), filepath.Join(dir, "c.vhdx")
	p, err := Create(ppath, &vdisk.CreateOptions{Size: 8 * miB, BlockSize: miB})
	if err != nil {
		t.Fatal(err)
	}
	link := p.hdr.DataWriteGUID
	p.Close()
	c, err := Create(cpath, &vdisk.CreateOptions{Parent: ppath})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// p.vhdx becomes a copy of the child (relative_path "p.vhdx") whose
	// DataWriteGuid is the linkage the child, and so the copy, expects.
	img, err := os.ReadFile(cpath)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{header1Offset, header2Offset} {
		h, err := decodeHeader(img[off:][:headerSize], off)
		if err != nil {
			t.Fatal(err)
		}
		h.DataWriteGUID = link
		copy(img[off:], h.encode())
	}
	if err := os.WriteFile(ppath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	opens := 0
	opts := &vdisk.OpenOptions{ReadOnly: true, OpenFile: func(path string, ro bool) (vdisk.File, error) {
		opens++
		return vdisk.OpenOSFile(path, ro)
	}}
	for _, name := range []string{cpath, ppath} {
		opens = 0
		d, err := Open(name, opts)
		if err == nil {
			d.Close()
			t.Fatalf("%s: open of a looping chain succeeded", name)
		}
		if !errors.Is(err, vdisk.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		if opens > 2*maxChain {
			t.Errorf("%s: %d opens", name, opens)
		}
	}
	f, err := vdisk.OpenOSFile(cpath, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Check(f, cpath, nil)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	found := false
	for _, x := range fs {
		found = found || x.Rule == "vhdx.parent_chain"
	}
	if !found {
		t.Errorf("check reports no parent problem: %+v", fs)
	}
}
