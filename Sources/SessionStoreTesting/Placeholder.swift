// Conformance suite: see BackendConformance.swift
