package cli

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512": 512, "0": 0, "64K": 64 << 10, "32M": 32 << 20, "10G": 10 << 30,
		"1T": 1 << 40, "10GiB": 10 << 30, "10gb": 10 << 30, "1.5G": 3 << 29,
		" 2m ": 2 << 20, "8191T": 8191 << 40,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "1.5", "10Q", "8388608T", "0.1K",
		"99999999999999999999", "NaNG", "InfG", "-1K"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1024: "1 KiB", 3 << 20: "3 MiB",
		3<<20 + 512: "3 MiB + 512 B", 3 << 29: "1.50 GiB", 10 << 40: "10 TiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzParseSize: any input gives a size that is not negative, or an
// error; never a panic.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "10G", "1.5M", "8191T", "0.1K", "-1", "NaNG", "9e99T"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}
