//go:build !linux

package attach

import (
	"errors"
	"fmt"
	"runtime"
)

func unsupported() error {
	return fmt.Errorf("attach: block devices from disk images are not implemented on %s: %w",
		runtime.GOOS, errors.ErrUnsupported)
}

// Attach returns an error wrapping [errors.ErrUnsupported].
func Attach(r Request) (string, error) { return "", unsupported() }

// Detach returns an error wrapping [errors.ErrUnsupported].
func Detach(target string) error { return unsupported() }

// Find returns an error wrapping [errors.ErrUnsupported].
func Find(target string) (*State, error) { return nil, unsupported() }

// Serve returns an error wrapping [errors.ErrUnsupported].
func Serve(dir string, open Opener) error { return unsupported() }
