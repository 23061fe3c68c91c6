package vhdx

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/Microsoft/go-winio/pkg/guid"
	"github.com/vhdkit/vhd/internal/testutil"
	"github.com/vhdkit/vhd/internal/vdisk"
)

// TestSetVirtualDiskID rewrites the identifier through the log, then
// checks it with our reader, our checker and qemu-img check, and that
// the log is left empty and the data unchanged.
func TestSetVirtualDiskID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.vhdx")
	d, err := Create(path, &vdisk.CreateOptions{Type: vdisk.TypeDynamic, Size: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("payload"), 5<<20); err != nil {
		t.Fatal(err)
	}
	want := guid.GUID{Data1: 0x11223344, Data2: 0x5566, Data3: 0x7788,
		Data4: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	if err := d.SetVirtualDiskID(want); err != nil {
		t.Fatal(err)
	}
	if got := d.Info().ID; got != want.String() {
		t.Errorf("in session: ID %s, want %s", got, want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(path, &vdisk.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Info().ID; got != want.String() {
		t.Errorf("reopened: ID %s, want %s", got, want)
	}
	if !d.hdr.LogGUID.IsZero() {
		t.Error("LogGuid still set after Close")
	}
	b := make([]byte, 7)
	if _, err := d.ReadAt(b, 5<<20); err != nil || string(b) != "payload" {
		t.Errorf("data after set: %q, %v", b, err)
	}
	if err := d.SetVirtualDiskID(want); !errors.Is(err, vdisk.ErrReadOnly) {
		t.Errorf("read-only set: %v, want ErrReadOnly", err)
	}
	d.Close()
	checkFindings(t, path)
	testutil.Run(t, "qemu-img", "check", "-f", "vhdx", path)
}

// TestSetVirtualDiskIDSessionGUIDs: FileWriteGuid is renewed once per
// session, not at every SetVirtualDiskID, and DataWriteGuid (which
// children link to) is kept.
func TestSetVirtualDiskIDSessionGUIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.vhdx")
	d, err := Create(path, &vdisk.CreateOptions{Type: vdisk.TypeDynamic, Size: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	old := d.hdr
	var fws []GUID
	for i := range 3 {
		id := guid.GUID{Data1: uint32(i + 1)}
		if err := d.SetVirtualDiskID(id); err != nil {
			t.Fatal(err)
		}
		fws = append(fws, d.hdr.FileWriteGUID)
		if d.hdr.DataWriteGUID != old.DataWriteGUID {
			t.Fatalf("set %d: DataWriteGuid changed", i)
		}
	}
	if fws[0] == old.FileWriteGUID {
		t.Error("FileWriteGuid not renewed")
	}
	if fws[1] != fws[0] || fws[2] != fws[0] {
		t.Errorf("FileWriteGuid renewed more than once: %v", fws)
	}
}
