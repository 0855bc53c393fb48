"""gradcheck"""
