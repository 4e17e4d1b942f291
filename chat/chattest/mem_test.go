package chattest

import "testing"

func TestMemContract(t *testing.T) {
	Contract(t, func(t *testing.T) Store { return NewMem(nil) })
}
