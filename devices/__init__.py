"""llmos.devices"""
