package store

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// CallingHours is when a campaign may call: on Days (0 = Sunday … 6 =
// Saturday), from Start to End ("HH:MM", End may be "24:00"), in the
// callee's local time. A window whose End is before its Start runs past
// midnight: it belongs to the day it starts on and ends on the next.
type CallingHours struct {
	Days  []int  `json:"days"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// Campaign is an outbound calling campaign: the caller ID presented on
// its calls and the hours it may call.
type Campaign struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CallerID   string `json:"callerId,omitempty"`
	CallerName string `json:"callerName,omitempty"`
	// CallingHours nil means the campaign may call at any time.
	CallingHours *CallingHours `json:"callingHours,omitempty"`
	Enabled      bool          `json:"enabled"`
	CreatedAt    time.Time     `json:"createdAt"`
	CreatedBy    string        `json:"createdBy,omitempty"`
	ModifiedAt   time.Time     `json:"modifiedAt"`
	ModifiedBy   string        `json:"modifiedBy,omitempty"`
}

// ParseClock reads "HH:MM" (00:00 … 23:59, and "24:00" when end is true)
// as minutes after midnight.
func ParseClock(s string, end bool) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("store: %q is not HH:MM", s)
	}
	digit := func(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }
	h1, ok1 := digit(s[0])
	h2, ok2 := digit(s[1])
	m1, ok3 := digit(s[3])
	m2, ok4 := digit(s[4])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, fmt.Errorf("store: %q is not HH:MM", s)
	}
	h, m := h1*10+h2, m1*10+m2
	switch {
	case end && h == 24 && m == 0:
		return 24 * 60, nil
	case h > 23 || m > 59:
		return 0, fmt.Errorf("store: %q is not a time of day", s)
	}
	return h*60 + m, nil
}

// WithinCallingHours reports whether a campaign may call someone whose
// time zone is loc at the instant t. A nil campaign or one without calling
// hours may always call; unreadable hours, an empty window (Start equal to
// End) or no days never allow a call. The window is evaluated on the
// callee's wall clock, so it follows daylight-saving changes: 09:00–17:00
// stays 09:00–17:00 local time on both sides of a transition. A nil loc is
// UTC.
func WithinCallingHours(c *Campaign, loc *time.Location, t time.Time) bool {
	if c == nil || c.CallingHours == nil {
		return true
	}
	h := c.CallingHours
	start, err1 := ParseClock(h.Start, false)
	end, err2 := ParseClock(h.End, true)
	if err1 != nil || err2 != nil || start == end {
		return false
	}
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	now := lt.Hour()*60 + lt.Minute()
	day := int(lt.Weekday())
	if start < end {
		return slices.Contains(h.Days, day) && now >= start && now < end
	}
	// Past midnight: the evening part belongs to today, the morning part
	// to the window that started yesterday.
	if now >= start {
		return slices.Contains(h.Days, day)
	}
	if now < end {
		return slices.Contains(h.Days, (day+6)%7)
	}
	return false
}

func campaignKey(id string) []byte       { return []byte("cp/" + id) }
func campaignNameKey(name string) []byte { return []byte("x/cpn/" + strings.ToLower(name)) }

var prefixCampaign = []byte("cp/")

// GetCampaign loads a campaign by id.
func (tx *Tx) GetCampaign(id string) (*Campaign, error) {
	return getRecord[Campaign](tx, campaignKey(id))
}

// PutCampaign creates or replaces a campaign; names are unique ignoring case.
func (tx *Tx) PutCampaign(c *Campaign) error {
	if !ValidID(c.ID) || strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("store: bad campaign")
	}
	return putNamed(tx, "campaign", campaignKey, campaignNameKey, c.ID, c, func(c *Campaign) string { return c.Name })
}

// ListCampaigns lists every campaign by lower-cased name.
func (tx *Tx) ListCampaigns() ([]*Campaign, error) {
	out, err := listRecords[Campaign](tx, prefixCampaign)
	slices.SortFunc(out, func(a, b *Campaign) int { return compareByName(a.Name, a.ID, b.Name, b.ID) })
	return out, err
}

// DeleteCampaign removes a campaign. Workitems placed for it keep its id.
func (tx *Tx) DeleteCampaign(id string) error {
	c, err := tx.GetCampaign(id)
	if err != nil {
		return err
	}
	if err := tx.del(campaignNameKey(c.Name)); err != nil {
		return err
	}
	return tx.del(campaignKey(id))
}
