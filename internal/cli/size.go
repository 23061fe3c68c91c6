package cli

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Binary units for sizes.
var units = []struct {
	suffix string
	shift  uint
}{
	{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10},
}

// parseSize parses a size in bytes with an optional binary unit: "512",
// "64K", "32M", "10G", "1T" (also "10GiB", "10GB", "10g"; every unit is
// a power of 1024). A fraction is allowed with a unit ("1.5G") if the
// result is a whole number of bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	var shift uint
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, shift = strings.TrimSuffix(t, u.suffix), u.shift
			break
		}
	}
	if n, err := strconv.ParseUint(t, 10, 63); err == nil {
		if shift > 0 && bits.LeadingZeros64(n) <= int(shift) {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return int64(n << shift), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || shift == 0 || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid size %q (use bytes or a K, M, G or T suffix)", s)
	}
	v := f * float64(uint64(1)<<shift)
	if v >= math.MaxInt64 || v != math.Trunc(v) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes in range", s)
	}
	return int64(v), nil
}

// sizeFlag is a pflag.Value holding a size parsed by parseSize.
type sizeFlag struct{ n int64 }

func (f *sizeFlag) String() string {
	if f.n == 0 {
		return ""
	}
	return strconv.FormatInt(f.n, 10)
}

func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	f.n = n
	return nil
}

func (f *sizeFlag) Type() string { return "size" }

// humanSize formats n bytes with the largest binary unit that fits:
// "32 MiB", "1.50 GiB", "512 B".
func humanSize(n int64) string {
	names := []string{"TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		unit := int64(1) << u.shift
		if n >= unit {
			if n%unit == 0 {
				return fmt.Sprintf("%d %s", n/unit, names[i])
			}
			s := fmt.Sprintf("%.2f %s", float64(n)/float64(unit), names[i])
			if strings.HasSuffix(s, ".00 "+names[i]) {
				// Close to whole: say by how much rather than hide it.
				return fmt.Sprintf("%d %s + %d B", n/unit, names[i], n%unit)
			}
			return s
		}
	}
	return fmt.Sprintf("%d B", n)
}
