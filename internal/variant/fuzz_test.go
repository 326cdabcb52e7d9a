package variant

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzReadArgs feeds arbitrary bytes as DISPPARAMS, rgvarg and a data
// region: decoding must fail cleanly, never panic, and never allocate
// beyond the limits.
func FuzzReadArgs(f *testing.F) {
	a := NewArena()
	seed := a.DispParams(VariantRaw(VT_I4, 1), VariantRaw(VT_BYREF|VT_ARRAY|VT_RECORD, 0x10000))
	hdr, _ := a.Read(seed, DispParamsSize)
	f.Add(hdr, append(VariantRaw(VT_I4, 1), VariantRaw(VT_BSTR, 0x20004)...), []byte{4, 0, 0, 0, 'a', 0, 'b', 0})
	f.Add(make([]byte, 16), VariantRaw(VT_ARRAY|VT_R8, 0x20000), make([]byte, 24))
	f.Fuzz(func(t *testing.T, header, rgvarg, data []byte) {
		if len(header) < DispParamsSize {
			return
		}
		ar := &Arena{next: 0x10000}
		rg := ar.Alloc(rgvarg)
		ar.next = 0x20000
		ar.Alloc(data)
		h := append([]byte(nil), header[:DispParamsSize]...)
		if binary.LittleEndian.Uint32(h[0:]) == 0 {
			binary.LittleEndian.PutUint32(h[0:], rg)
		}
		ar.next = 0x30000
		dp := ar.Alloc(h)
		args, err := ReadArgs(ar, dp)
		if err != nil {
			return
		}
		for _, v := range args {
			_ = ToMxValue(v, time.UTC)
			_, _ = DecodeStatuses(v, DefaultStatusLayout)
		}
	})
}
