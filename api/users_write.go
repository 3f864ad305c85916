package api

// The body of the Users API's writes: what may be sent, its checks and
// how it is applied to the stored user.

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"pbxd/api/auth"
	"pbxd/store"
)

// userWrite is the body of POST /users and of POST/PUT /users/{id}. Members
// left out are left unchanged; roles, when given, replace the whole set.
type userWrite struct {
	UserName                   *string   `json:"userName"`
	Password                   *string   `json:"password"`
	CurrentPassword            *string   `json:"currentPassword"`
	FirstName                  *string   `json:"firstName"`
	LastName                   *string   `json:"lastName"`
	Roles                      *[]string `json:"roles"`
	DoNotDisturb               *string   `json:"doNotDisturb"`
	ChangePasswordOnFirstLogin *bool     `json:"changePasswordOnFirstLogin"`
	Extension                  *string   `json:"extension"`
	Timezone                   *string   `json:"timezone"`
	Enabled                    *bool     `json:"enabled"`
	AcdAutoLogin               *bool     `json:"acdAutoLogin"`
	DefaultAcdLoginStatus      *string   `json:"defaultAcdLoginStatus"`
	AcdAutoAccept              *bool     `json:"acdAutoAccept"`
	ConnectTo                  *string   `json:"connectTo"`
	ConnectNumber              *string   `json:"connectNumber"`
}

var (
	userNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
	extensionRE = regexp.MustCompile(`^[0-9]{2,10}$`)
)

const maxNameLen = 100

// selfFields reports whether w touches only what a user may change about
// themselves: first and last name, password and their ACD preferences
// (acdAutoLogin, acdAutoAccept, defaultAcdLoginStatus). Where
// connectToServer calls them (connectTo, connectNumber) is for admins to
// set: a number there is dialled out through a trunk at the box's cost.
func (w *userWrite) selfFields() bool {
	return w.UserName == nil && w.Roles == nil && w.DoNotDisturb == nil && w.ChangePasswordOnFirstLogin == nil &&
		w.Extension == nil && w.Timezone == nil && w.Enabled == nil && w.ConnectTo == nil && w.ConnectNumber == nil
}

// changedFields names the members present, for the audit log.
func (w *userWrite) changedFields() string {
	var f fieldNames
	f.add(w.UserName != nil, "userName")
	f.add(w.Password != nil, "password")
	f.add(w.FirstName != nil, "firstName")
	f.add(w.LastName != nil, "lastName")
	f.add(w.Roles != nil, "roles")
	f.add(w.DoNotDisturb != nil, "doNotDisturb")
	f.add(w.ChangePasswordOnFirstLogin != nil, "changePasswordOnFirstLogin")
	f.add(w.Extension != nil, "extension")
	f.add(w.Timezone != nil, "timezone")
	f.add(w.Enabled != nil, "enabled")
	f.add(w.AcdAutoLogin != nil, "acdAutoLogin")
	f.add(w.DefaultAcdLoginStatus != nil, "defaultAcdLoginStatus")
	f.add(w.AcdAutoAccept != nil, "acdAutoAccept")
	f.add(w.ConnectTo != nil, "connectTo")
	f.add(w.ConnectNumber != nil, "connectNumber")
	return f.String()
}

// validate checks every present member; create demands userName.
func (w *userWrite) validate(create bool) *Problem {
	if create && w.UserName == nil {
		return invalid("userName", "is required")
	}
	if w.UserName != nil && !userNameRE.MatchString(*w.UserName) {
		return invalid("userName", "1–128 characters: letters, digits and . _ @ + -, starting with a letter or digit")
	}
	if w.Password != nil {
		if err := auth.CheckPasswordPolicy(*w.Password); err != nil {
			return invalid("password", err.Error())
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"firstName", w.FirstName}, {"lastName", w.LastName}} {
		if f.v != nil && (len(*f.v) > maxNameLen || strings.ContainsAny(*f.v, "\x00\r\n")) {
			return invalid(f.name, "at most 100 characters on one line")
		}
	}
	if w.Roles != nil {
		for _, r := range *w.Roles {
			if !slices.Contains(store.Roles, r) {
				return invalid("roles", "each role must be ROLE_ADMIN, ROLE_AGENT or ROLE_SUPERVISOR")
			}
		}
	}
	if w.DoNotDisturb != nil && *w.DoNotDisturb != flagOn && *w.DoNotDisturb != flagOff {
		return invalid("doNotDisturb", `must be "on" or "off"`)
	}
	if w.Extension != nil && *w.Extension != "" && !extensionRE.MatchString(*w.Extension) {
		return invalid("extension", "2–10 digits, or empty for none")
	}
	if w.Timezone != nil {
		if _, err := time.LoadLocation(*w.Timezone); err != nil || *w.Timezone == "" || *w.Timezone == "Local" {
			return invalid("timezone", "must be an IANA time zone such as Europe/Berlin")
		}
	}
	if w.DefaultAcdLoginStatus != nil && *w.DefaultAcdLoginStatus != "" && !store.StatusSlugRE.MatchString(*w.DefaultAcdLoginStatus) {
		return invalid("defaultAcdLoginStatus", "must be the statusId of a status of the catalogue, or empty for available")
	}
	if w.ConnectTo != nil {
		switch *w.ConnectTo {
		case store.ConnectDevice, store.ConnectNumber, store.ConnectBrowser:
		default:
			return invalid("connectTo", `must be "device" (ring the user's phones), "number" (call connectNumber) or "browser"`)
		}
	}
	if w.ConnectNumber != nil && *w.ConnectNumber != "" && !numberRE.MatchString(*w.ConnectNumber) {
		return invalid("connectNumber", "must be a number: digits with an optional leading +, or empty")
	}
	return nil
}

// checkUserACD validates what the user's ACD and connection settings
// refer to, once w has been applied to u: the default login status must
// be in the catalogue and not offline, and connectTo "number" needs a
// number.
func checkUserACD(tx *store.Tx, w *userWrite, u *store.User) error {
	if w.DefaultAcdLoginStatus != nil && u.DefaultAcdLoginStatus != "" {
		st, err := tx.StatusBySlug(u.DefaultAcdLoginStatus)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("defaultAcdLoginStatus", "no status "+strconv.Quote(u.DefaultAcdLoginStatus)+" in the catalogue (GET /api/v1/statuses)")
		}
		if err != nil {
			return err
		}
		if st.Class == store.StatusOffline {
			return invalid("defaultAcdLoginStatus", "an ACD login cannot start offline")
		}
	}
	if u.ConnectTo == store.ConnectNumber && u.ConnectNumber == "" {
		return invalid("connectNumber", `is required when connectTo is "number"`)
	}
	return nil
}

// apply copies the present members onto u (password handled by the caller).
func (w *userWrite) apply(u *store.User) {
	if w.UserName != nil {
		u.UserName = *w.UserName
	}
	if w.FirstName != nil {
		u.FirstName = *w.FirstName
	}
	if w.LastName != nil {
		u.LastName = *w.LastName
	}
	if w.Roles != nil {
		var roles []string
		for _, r := range *w.Roles {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		slices.Sort(roles)
		u.Roles = roles
	}
	if w.DoNotDisturb != nil {
		u.DoNotDisturb = *w.DoNotDisturb == flagOn
	}
	if w.ChangePasswordOnFirstLogin != nil {
		u.ChangePasswordOnFirstLogin = *w.ChangePasswordOnFirstLogin
	}
	if w.Extension != nil {
		u.Extension = *w.Extension
	}
	if w.Timezone != nil {
		u.Timezone = *w.Timezone
	}
	if w.Enabled != nil {
		u.Enabled = *w.Enabled
	}
	if w.AcdAutoLogin != nil {
		u.AcdAutoLogin = *w.AcdAutoLogin
	}
	if w.DefaultAcdLoginStatus != nil {
		u.DefaultAcdLoginStatus = *w.DefaultAcdLoginStatus
	}
	if w.AcdAutoAccept != nil {
		u.AcdAutoAccept = *w.AcdAutoAccept
	}
	if w.ConnectTo != nil {
		u.ConnectTo = *w.ConnectTo
		if u.ConnectTo == store.ConnectDevice {
			u.ConnectTo = ""
		}
	}
	if w.ConnectNumber != nil {
		u.ConnectNumber = *w.ConnectNumber
	}
}
