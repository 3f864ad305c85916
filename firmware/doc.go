// Package firmware builds, verifies and applies pbxd's signed update bundles
// with A/B slots and rollback, and applies installer provisioning.
package firmware
