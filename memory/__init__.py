"""llmos.memory"""
