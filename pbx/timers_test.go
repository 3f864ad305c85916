package pbx

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestCompletedTransactionsAreKeptFiveSeconds(t *testing.T) {
	for name, d := range map[string]time.Duration{"J": sip.Timer_J, "L": sip.Timer_L, "M": sip.Timer_M} {
		if d != 5*time.Second {
			t.Errorf("Timer %s = %v, want 5s", name, d)
		}
	}
	if sip.Timer_B != 64*sip.T1 || sip.Timer_F != 64*sip.T1 || sip.Timer_H != 64*sip.T1 {
		t.Error("retransmission timeouts changed")
	}
}
