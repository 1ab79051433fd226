//! Simulator Management API conformance (Users, Groups, System Log, rate limits, faults).
