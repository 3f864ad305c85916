package b2bua

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestBestFailure(t *testing.T) {
	res := func(code int) *sip.Response { return sip.NewResponse(code, "") }
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{[]int{480, 486}, 486},
		{[]int{486, 603}, 603},
		{[]int{404, 480}, 404},
		{[]int{407, 503}, 503},
		{[]int{408}, 408},
	} {
		var best *sip.Response
		for _, c := range tc.codes {
			best = better(best, res(c))
		}
		if best.StatusCode != tc.want {
			t.Errorf("%v: relayed %d, want %d", tc.codes, best.StatusCode, tc.want)
		}
	}
	for code, want := range map[int]string{486: endBusy, 600: endBusy, 404: endNotFound, 480: endNoAnswer, 408: endNoAnswer,
		487: endCancelled, 503: endFailed, 403: endRejected, 603: endRejected} {
		if got := endFor(code); got != want {
			t.Errorf("endFor(%d) = %s, want %s", code, got, want)
		}
	}
}
