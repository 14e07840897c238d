"""llmos.apps"""
