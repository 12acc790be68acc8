"""The real-time conversation: turn-taking, barge-in, one media clock, A/V sync, traces."""

from talkie.session.character import Character, CharacterLibrary
from talkie.session.contract import LiveConversation
from talkie.session.conversation import Conversation, SessionOptions

__all__ = ["Character", "CharacterLibrary", "Conversation", "LiveConversation", "SessionOptions"]
