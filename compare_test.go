package vhd

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vhdkit/vhd/raw"
)

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, size int64, writes map[int64]byte) Disk {
		t.Helper()
		d, err := raw.Create(filepath.Join(dir, name), &CreateOptions{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		for off, v := range writes {
			if _, err := d.WriteAt([]byte{v}, off); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	size := int64(24 * mib)
	a := mk("a", size, map[int64]byte{5: 1, 9*mib + 3: 2})
	same := mk("same", size, map[int64]byte{5: 1, 9*mib + 3: 2})
	// Allocated zeros where a has a hole: still equal.
	zeros := mk("zeros", size, map[int64]byte{5: 1, 9*mib + 3: 2, 20 * mib: 0})
	late := mk("late", size, map[int64]byte{5: 1, 9*mib + 3: 2, 17*mib + 77: 9})
	early := mk("early", size, map[int64]byte{5: 1, 9*mib + 3: 3})
	missing := mk("missing", size, map[int64]byte{5: 1})
	longer := mk("longer", size+512, map[int64]byte{5: 1, 9*mib + 3: 2})

	for _, tc := range []struct {
		name string
		b    Disk
		want *Difference
	}{
		{"same", same, nil},
		{"allocated zeros", zeros, nil},
		{"data where a has a hole", late, &Difference{17*mib + 77, size, size}},
		{"different byte", early, &Difference{9*mib + 3, size, size}},
		{"hole where a has data", missing, &Difference{9*mib + 3, size, size}},
		{"longer", longer, &Difference{size, size, size + 512}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compare(context.Background(), a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("Compare = %+v, want %+v", got, tc.want)
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Compare(ctx, a, late); err == nil {
		t.Fatal("Compare with a cancelled context succeeded")
	}
}
