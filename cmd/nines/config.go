package main

import (
	"fmt"
	"os"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/incidents"
)

// fileConfig is nines' YAML configuration file. Every section belongs to
// the package it configures; unknown fields are errors.
type fileConfig struct {
	Incidents    incidents.Config    `yaml:"incidents"`
	Availability availability.Config `yaml:"availability"`
	Chat         chat.Config         `yaml:"chat"`
}

// loadConfig reads the config file; an empty path gives the defaults.
func loadConfig(path string) (fileConfig, error) {
	cfg := fileConfig{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("--config.file: %w", err)
		}
		doc, err := parseYAMLDoc(path, b)
		if err != nil {
			return cfg, err
		}
		if err := doc.decodeStrict(&cfg); err != nil {
			return cfg, err
		}
	}
	if err := cfg.Incidents.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", orDash(path), err)
	}
	if err := cfg.Availability.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", orDash(path), err)
	}
	if err := cfg.Chat.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", orDash(path), err)
	}
	return cfg, nil
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// loadFiles reads the config file and the catalog, as the commands that
// work without a running server (report, spool replay) need both.
func loadFiles(configFile, catalogFile string) (fileConfig, *catalog.Catalog, error) {
	cfg, err := loadConfig(configFile)
	if err != nil {
		return fileConfig{}, nil, err
	}
	cat, err := catalog.Load(catalogFile)
	if err != nil {
		return fileConfig{}, nil, fmt.Errorf("--catalog.file: %w", err)
	}
	return cfg, cat, nil
}
