package vhd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestParentSkip opens a child whose parent is gone with
// ParentPolicy.Skip: Info and the child's own data are there, reads of
// what the parent holds fail with ErrParentNotFound, and a writable
// open is refused.
func TestParentSkip(t *testing.T) {
	for _, ext := range []string{".vhdx", ".vhd"} {
		t.Run(ext[1:], func(t *testing.T) {
			dir := t.TempDir()
			base, child := filepath.Join(dir, "base"+ext), filepath.Join(dir, "child"+ext)
			p, err := Create(base, FormatUnknown, &CreateOptions{Size: 8 << 20, BlockSize: 2 << 20})
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
			c, err := Create(child, FormatUnknown, &CreateOptions{Parent: base, BlockSize: 2 << 20})
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte{7}, 2<<20)
			if _, err := c.WriteAt(data, 4<<20); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(base); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(child, &OpenOptions{ReadOnly: true}); !errors.Is(err, ErrParentNotFound) {
				t.Fatalf("open without parent: %v, want ErrParentNotFound", err)
			}
			_, err = Open(child, &OpenOptions{Parent: ParentPolicy{Skip: true}})
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("writable open with Skip: %v, want ErrInvalidArgument", err)
			}
			d, err := Open(child, &OpenOptions{ReadOnly: true, Parent: ParentPolicy{Skip: true}})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if info := d.Info(); info.Type != TypeDifferencing || info.VirtualSize != 8<<20 || info.Parent != nil {
				t.Errorf("info %+v", info)
			}
			got := make([]byte, 2<<20)
			if _, err := d.ReadAt(got, 4<<20); err != nil || !bytes.Equal(got, data) {
				t.Errorf("child's own block: %v", err)
			}
			if _, err := d.ReadAt(got, 0); !errors.Is(err, ErrParentNotFound) {
				t.Errorf("read of the parent's range: %v, want ErrParentNotFound", err)
			}
		})
	}
}

// TestParentSkipNoSilentZeros: a disk opened with ParentPolicy.Skip maps
// what its parent holds as unreadable Data, so Convert and Compare fail
// with ErrParentNotFound rather than taking the parent's data for zeros,
// and Check of it does not panic.
func TestParentSkipNoSilentZeros(t *testing.T) {
	for _, ext := range []string{".vhdx", ".vhd"} {
		t.Run(ext[1:], func(t *testing.T) {
			dir := t.TempDir()
			base, child := filepath.Join(dir, "base"+ext), filepath.Join(dir, "child"+ext)
			p, err := Create(base, FormatUnknown, &CreateOptions{Size: 8 << 20, BlockSize: 2 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.WriteAt(bytes.Repeat([]byte{5}, 1<<20), 0); err != nil {
				t.Fatal(err)
			}
			p.Close()
			c, err := Create(child, FormatUnknown, &CreateOptions{Parent: base, BlockSize: 2 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WriteAt(bytes.Repeat([]byte{7}, 512), 4<<20); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(base); err != nil {
				t.Fatal(err)
			}
			skip := &OpenOptions{ReadOnly: true, Parent: ParentPolicy{Skip: true}}
			d, err := Open(child, skip)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			m, err := d.Map(0, d.Size())
			want := []Extent{
				{Offset: 0, Length: 4 << 20, State: Data, FileOffset: -1, Depth: 1},
				{Offset: 4 << 20, Length: 512, State: Data, FileOffset: m[1].FileOffset},
				{Offset: 4<<20 + 512, Length: 4<<20 - 512, State: Data, FileOffset: -1, Depth: 1},
			}
			if err != nil || len(m) != 3 || m[0] != want[0] || m[1] != want[1] || m[2] != want[2] {
				t.Errorf("map %+v, %v", m, err)
			}
			if _, err := Check(child, skip); err != nil {
				t.Errorf("check: %v", err)
			}
			ctx := context.Background()
			if err := Convert(ctx, d, filepath.Join(dir, "out.img"), nil); !errors.Is(err, ErrParentNotFound) {
				t.Errorf("convert: %v, want ErrParentNotFound", err)
			}
			z, err := Create(filepath.Join(dir, "z"+ext), FormatUnknown, &CreateOptions{Size: 8 << 20, BlockSize: 2 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer z.Close()
			if diff, err := Compare(ctx, d, z); !errors.Is(err, ErrParentNotFound) {
				t.Errorf("compare: %+v, %v, want ErrParentNotFound", diff, err)
			}
		})
	}
}
