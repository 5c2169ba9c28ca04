"""zoo.viz"""
