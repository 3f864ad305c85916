package trunks

import (
	"context"
	"testing"
)

// BenchmarkRegister measures one registration against pbxd's own registrar
// on loopback: "refresh" reuses the carrier's nonce (one round trip),
// "fresh" starts without one (challenge, then the answer).
func BenchmarkRegister(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		name := "refresh"
		if fresh {
			name = "fresh"
		}
		b.Run(name, func(b *testing.B) {
			bd := newBed(b, carrierOpts{})
			tr := bd.putTrunk(b, bd.trunk(carrierPass))
			m := bd.manager(b, nil)
			w := &worker{m: m, t: tr, callID: randomHex(12) + "@pbxd", fromTag: randomHex(8)}
			ctx := context.Background()
			if out := w.register(ctx, 60); out.err != nil {
				b.Fatal(out.err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if fresh {
					w.auth = nil
				}
				if out := w.register(ctx, 60); out.err != nil {
					b.Fatal(out.err)
				}
			}
		})
	}
}
